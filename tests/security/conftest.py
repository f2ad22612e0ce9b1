"""The security suite reuses the reliability suite's demo county (one per module, its own database)."""

from tests.reliability.conftest import pg_demo, work_dir

__all__ = ["pg_demo", "work_dir"]
