"""One router per resource: ``clips``, ``episodes``."""
