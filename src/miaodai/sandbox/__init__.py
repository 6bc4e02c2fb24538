"""Sandbox implementations of outside parties and their sandbox-only endpoints.

Nothing here is mounted or used when ``MIAODAI_SANDBOX`` is off.
"""
