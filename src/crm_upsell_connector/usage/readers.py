"""Reading a usage source in chunks: a SQL query (server-side cursor), a CSV or a Parquet file.

A reader never holds the whole result: rows arrive ``chunk_rows`` at a time as dicts of the
columns the source names. SQL results are fetched through a server-side cursor where the dialect
has one (SQLAlchemy's ``stream_results``: PostgreSQL with psycopg, MySQL with its SSCursor); a
driver without one (SQLite, some warehouse dialects) buffers the result in its own memory, so
give such a source an incremental ``:since`` query. Every failure is a ``UsageSourceError`` naming the source, one line, with
secrets masked (a driver's message can quote the URL).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from crm_upsell_connector.errors import ConfigError, ConnectorError
from crm_upsell_connector.http.redact import scrub
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_connector.usage.config import UsageSource, is_secret_ref, uses_since

Row = dict[str, Any]
# A full read of an incremental query binds ``:since`` to this instant: every row is newer.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Large fields in a CSV export (descriptions, JSON) must not stop the read.
csv.field_size_limit(16 * 1024 * 1024)


class UsageSourceError(ConnectorError):
    """A usage source could not be read; its stream fails, the CRM streams are not touched."""

    exit_code = 1


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return scrub(line)[:300]


class SourceReader:
    """Opens one source; ``chunks(since)`` yields lists of rows, ``columns`` lists what it has."""

    def __init__(self, source: UsageSource, secrets: SecretResolver) -> None:
        self.source = source
        self.secrets = secrets

    def fail(self, what: str, exc: BaseException | None = None, hint: str = "") -> UsageSourceError:
        detail = f": {_first_line(exc)}" if exc is not None else ""
        return UsageSourceError(f"usage source {self.source.name!r}: {what}{detail}", hint=hint)

    # ---- the columns a source must have ---------------------------------------------------------

    def check_columns(self, columns: list[str]) -> None:
        """Raise ``ConfigError`` naming the configured columns ``columns`` lacks."""
        missing = [c for c in self.source.columns() if c not in columns]
        if missing:
            raise ConfigError(
                f"usage source {self.source.name!r}: no column {', '.join(repr(c) for c in missing)} "
                f"in what it returns",
                hint=f"its columns: {', '.join(columns) or 'none'}",
            )

    def chunks(self, since: datetime | None = None) -> Iterator[list[Row]]:
        """The rows (only the configured columns), ``chunk_rows`` at a time.

        ``since`` is bound to the query's ``:since`` (files: rows stamped before it are skipped).
        """
        if self.source.kind == "sql":
            yield from self._sql_chunks(since)
        elif self.source.kind == "csv":
            yield from self._filter(self._csv_chunks(), since)
        else:
            yield from self._filter(self._parquet_chunks(), since)

    def _filter(self, chunks: Iterator[list[Row]], since: datetime | None) -> Iterator[list[Row]]:
        column = self.source.cursor_column
        if since is None or column is None:
            yield from chunks
            return
        from crm_upsell_connector.usage.values import parse_stamp

        for rows in chunks:
            kept = [r for r in rows if (stamp := parse_stamp(r.get(column))) is None or stamp >= since]
            if kept:
                yield kept

    # ---- SQL --------------------------------------------------------------------------------

    def engine(self) -> sa.Engine:
        source = self.source
        assert source.url is not None
        text = (
            self.secrets.resolve(source.url, what=f"usage.sources {source.name}.url")
            if is_secret_ref(source.url)
            else source.url
        )
        try:
            url = make_url(text)
        except sa.exc.ArgumentError:
            raise ConfigError(f"usage source {source.name!r}: the URL is not a SQLAlchemy URL") from None
        if source.password is not None:
            url = url.set(password=self.secrets.resolve(source.password, what=f"usage source {source.name}"))
        try:
            return sa.create_engine(url, poolclass=NullPool)
        except NoSuchModuleError:
            raise ConfigError(
                f"usage source {source.name!r}: no SQLAlchemy dialect for {url.drivername!r} is installed",
                hint="install the dialect's package (e.g. snowflake-sqlalchemy, sqlalchemy-bigquery, pymysql)",
            ) from None
        except (SQLAlchemyError, ImportError) as exc:
            raise self.fail("cannot open the database", exc) from None

    def _sql_chunks(self, since: datetime | None) -> Iterator[list[Row]]:
        source = self.source
        assert source.query is not None
        params = {"since": since or EPOCH} if uses_since(source.query) else {}
        engine = self.engine()
        try:
            with engine.connect() as conn:
                # A server-side cursor where the driver has one: rows come as they are fetched.
                result = conn.execution_options(
                    stream_results=True, max_row_buffer=source.chunk_rows
                ).execute(sa.text(source.query), params)
                columns = list(result.keys())
                self.check_columns(columns)
                wanted = source.columns()
                at = [columns.index(c) for c in wanted]
                for part in result.partitions(source.chunk_rows):
                    yield [{c: row[i] for c, i in zip(wanted, at, strict=True)} for row in part]
        except (ConfigError, UsageSourceError):
            raise
        except SQLAlchemyError as exc:
            raise self.fail(
                "the query failed", exc, hint="run the query by hand to see the whole error"
            ) from None
        finally:
            engine.dispose()

    # ---- files ------------------------------------------------------------------------------

    def _path(self) -> Path:
        assert self.source.path is not None
        path = Path(self.source.path)
        if not path.is_file():
            raise self.fail(
                f"no file at {path}", hint="check usage.sources path (relative to the config file)"
            )
        return path

    def _csv_chunks(self) -> Iterator[list[Row]]:
        path = self._path()
        wanted = self.source.columns()
        try:
            with path.open(newline="", encoding=self.source.encoding) as handle:
                reader = csv.DictReader(handle, delimiter=self.source.delimiter)
                self.check_columns(list(reader.fieldnames or []))
                rows: list[Row] = []
                for record in reader:
                    rows.append({c: record.get(c) for c in wanted})
                    if len(rows) >= self.source.chunk_rows:
                        yield rows
                        rows = []
                if rows:
                    yield rows
        except (OSError, UnicodeDecodeError, csv.Error, LookupError) as exc:
            raise self.fail(f"cannot read {path}", exc) from None

    def _parquet_file(self) -> Any:
        try:
            import pyarrow.parquet as pq  # type: ignore[import-untyped]
        except ImportError:
            raise ConfigError(
                f"usage source {self.source.name!r}: reading Parquet needs pyarrow",
                hint="install the extra: pip install 'crm-upsell-connector[parquet]'",
            ) from None
        path = self._path()
        try:
            return pq.ParquetFile(path)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise self.fail(f"cannot read {path}", exc) from None

    def _parquet_chunks(self) -> Iterator[list[Row]]:
        handle = self._parquet_file()
        self.check_columns(list(handle.schema_arrow.names))
        try:
            for batch in handle.iter_batches(
                batch_size=self.source.chunk_rows, columns=self.source.columns()
            ):
                yield batch.to_pylist()
        except (OSError, ValueError) as exc:
            raise self.fail("cannot read the Parquet file", exc) from None

    # ---- preview ----------------------------------------------------------------------------

    def all_columns(self) -> list[str]:
        """Every column the source returns (for ``usage preview``); reads at most one row."""
        source = self.source
        if source.kind == "parquet":
            return list(self._parquet_file().schema_arrow.names)
        if source.kind == "csv":
            path = self._path()
            try:
                with path.open(newline="", encoding=source.encoding) as handle:
                    return list(next(csv.reader(handle, delimiter=source.delimiter), []))
            except (OSError, UnicodeDecodeError, csv.Error, LookupError) as exc:
                raise self.fail(f"cannot read {path}", exc) from None
        assert source.query is not None
        params = {"since": EPOCH} if uses_since(source.query) else {}
        engine = self.engine()
        try:
            with engine.connect() as conn:
                result = conn.execution_options(stream_results=True, max_row_buffer=1).execute(
                    sa.text(source.query), params
                )
                try:
                    return list(result.keys())
                finally:
                    result.close()
        except SQLAlchemyError as exc:
            raise self.fail("the query failed", exc) from None
        finally:
            engine.dispose()
