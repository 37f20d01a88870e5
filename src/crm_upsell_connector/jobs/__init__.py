"""Running connections in the background: one run of a connection, and the PostgreSQL job queue.

``run`` is one pipeline run as a worker does it (shared by both schedulers); ``app``, ``schedules``,
``worker`` and ``admin`` put PostgreSQL stores on procrastinate (https://procrastinate.readthedocs.io),
a job queue kept in the store's own database; SQLite stores use ``crm_upsell_connector.scheduler``.
"""
