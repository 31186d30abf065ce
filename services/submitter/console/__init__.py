"""The operators' web console, served by the submitter under ``/console``: jobs, dead
letters and the pipeline's health, server-rendered (Jinja2) with htmx for live parts.
Every asset is package data (``static/``): no CDN, no build step."""
