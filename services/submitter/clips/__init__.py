"""Clips for callers of the HTTP API: on demand (``on_demand``) and by request id
(``status``)."""
