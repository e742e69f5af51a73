"""Helpers shared by the tests, imported as ``support.<module>`` (pytest.ini puts tests/ on the path)."""
