"""The job lifecycle: drives production jobs from their outcomes to their end."""
