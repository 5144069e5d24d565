"""Test-only servers and tools shared by the test folders."""
