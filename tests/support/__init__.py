"""Helpers shared by the test suite: free ports, readiness waits, real peers."""
