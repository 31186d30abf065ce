"""The submitter's HTTP API: the app (``app.create_api``), one router module per resource
under ``routes``, and the pieces they share."""
