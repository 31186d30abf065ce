"""Signed webhooks: each job outcome POSTed to the job's callback URL, retried for a day."""
