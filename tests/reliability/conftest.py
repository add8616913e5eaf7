"""The reliability tests use the integration tests' lake on the real local stack."""

from tests.integration.conftest import lake_env

__all__ = ["lake_env"]
