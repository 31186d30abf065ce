"""The operator service layer: jobs across tenants (``jobs``), dead letters (``dlq``),
topics, offsets and lag (``topics``) and pipeline figures (``pipeline``). The console,
the ``/v1/ops`` API and the command line are built on it; none of it is tenant-facing."""
