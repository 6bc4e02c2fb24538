"""Shared declarations of request inputs: row ids in paths, queries, forms and bodies.

A row id is a BIGINT in both databases. A larger number (or one below 1) would overflow in the
PostgreSQL driver and answer 500, so every id a client sends is declared with these bounds and
answers 422 instead (a path that cannot match, such as ``-1`` under ``{loan_id:int}``, is a 404).
Ids in JSON bodies are strict: ``"7"``, ``7.0`` and ``true`` are not ids.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Path, Query
from pydantic import Field, StrictInt

ROW_ID_MAX = 2**63 - 1

RowId = Annotated[int, Path(ge=1, le=ROW_ID_MAX, description="A row id")]
# In a query an id is optional (a filter, a page cursor): declare ``name: RowIdQuery = None``.
RowIdQuery = Annotated[int | None, Query(ge=1, le=ROW_ID_MAX, description="A row id")]
RowIdForm = Annotated[int, Form(ge=1, le=ROW_ID_MAX, description="A row id")]
RowIdField = Annotated[StrictInt, Field(ge=1, le=ROW_ID_MAX)]
