"""The submitter: the public HTTP API (``http/``) over feature modules (``clips/``,
``episodes``, ``keys``), request/reply with the stages over Kafka (``requests``,
``waiter``, ``listener``) and the process wiring (``runtime``)."""
