"""Alembic migrations. One base revision; each package owns a branch that starts from it.

Run by :func:`core.db.migrate` (``alembic upgrade heads``). Branch files: ``versions/<pkg>_NNNN_*.py`` with
``branch_labels = ("<pkg>",)`` on the first file of the branch and ``down_revision`` chaining within it.
"""
