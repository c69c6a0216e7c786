"""Validate a landed batch against its dataset contract and promote it to curated data.

Structural problems (empty, corrupt or truncated file, wrong delimiter, missing/extra columns, a
batch of another dataset) are found first; then the pandera schema built from the contract checks
types, ranges, categories, nulls and unique keys. Every failure has a kind, a message and example
rows. A failing batch gets its report next to the raw object and never reaches the curated bucket.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from pipelines.aws import put_bytes
from pipelines.errors import InputRejectedError

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.aws import AwsClients
    from pipelines.contract import DatasetContract
    from pipelines.ingest import IngestResult

MAX_EXAMPLES = 3
LINE_NUMBERS = "mlops_line_numbers"
"""``DataFrame.attrs`` key of a CSV batch's record -> file line mapping."""
_OTHER_DELIMITERS = (",", ";", "\t", "|")
_BOOLEAN_TOKENS = {
    "true": True,
    "false": False,
    "1": True,
    "0": False,
    "yes": True,
    "no": False,
    "t": True,
    "f": False,
}


@dataclass
class CheckFailure:
    """One failed check: its kind (e.g. ``out_of_range``), the column, a message and example rows."""

    kind: str
    message: str
    column: str | None = None
    check: str | None = None
    count: int = 1
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ValidationReport:
    """The outcome of validating one batch; written as ``validation.json`` and ``validation.md``."""

    dataset: str
    contract_version: int
    source: str
    rows: int
    columns: list[str]
    failures: list[CheckFailure]
    created_at: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))

    @property
    def passed(self) -> bool:
        """True when no check failed."""
        return not self.failures

    @property
    def kinds(self) -> list[str]:
        """The distinct failure kinds, in report order."""
        return list(dict.fromkeys(f.kind for f in self.failures))

    def to_json(self) -> str:
        """The report as JSON (``schema_version: 1``)."""
        from pipelines.jsonio import strict_json

        body = {"schema_version": 1, "passed": self.passed, **asdict(self)}
        return strict_json(body)

    def to_markdown(self) -> str:
        """A readable summary of the report."""
        from pipelines.jsonio import strict_json

        verdict = "PASSED" if self.passed else f"FAILED ({len(self.failures)} check(s))"
        lines = [
            f"# Validation of `{self.source}`",
            "",
            f"- dataset: `{self.dataset}` (contract version {self.contract_version})",
            f"- rows: {self.rows}, columns: {len(self.columns)}",
            f"- result: **{verdict}**",
            "",
        ]
        for failure in self.failures:
            lines.append(f"## {failure.kind}" + (f" in `{failure.column}`" if failure.column else ""))
            lines += ["", failure.message, ""]
            lines += [f"- example: `{strict_json(ex, indent=None)}`" for ex in failure.examples]
            lines.append("")
        return "\n".join(lines)

    def summary(self) -> str:
        """One line per failure: ``[kind] message``."""
        if self.passed:
            return f"{self.source}: {self.rows} rows passed contract '{self.dataset}'"
        head = f"{self.source}: batch rejected by contract '{self.dataset}' ({len(self.failures)} failed check(s))"
        return "\n".join([head, *(f"  [{f.kind}] {f.message}" for f in self.failures)])


class BatchValidationError(InputRejectedError):
    """A batch failed validation; ``report`` lists each failed check."""

    def __init__(self, report: ValidationReport, report_uri: str | None = None) -> None:
        self.report = report
        self.report_uri = report_uri
        where = f"\nfull report: {report_uri}" if report_uri else ""
        super().__init__(report.summary() + where)


class _RejectedError(Exception):
    def __init__(self, failure: CheckFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


# --- reading -----------------------------------------------------------------------------------


def read_batch(data: bytes, file_name: str, contract: DatasetContract) -> pd.DataFrame:
    """Parse a CSV or Parquet batch into a frame (string columns kept as text); raise on a bad file."""
    if not data.strip():
        raise _RejectedError(
            CheckFailure("empty_file", f"'{file_name}' is empty (0 data bytes): nothing to ingest")
        )
    if file_name.endswith(".parquet"):
        return _read_parquet(data, file_name)
    return _read_csv(data, file_name, contract)


def _read_parquet(data: bytes, file_name: str) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(io.BytesIO(data)).to_pandas()
    except (pa.ArrowInvalid, OSError) as exc:
        raise _RejectedError(
            CheckFailure(
                "corrupt_file",
                f"'{file_name}' is not a readable Parquet file ({exc}); re-export it or check the upload",
            )
        ) from None


def _read_csv(data: bytes, file_name: str, contract: DatasetContract) -> pd.DataFrame:
    import pandas as pd

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _RejectedError(
            CheckFailure(
                "corrupt_file", f"'{file_name}' is not UTF-8 text ({exc.reason} at byte {exc.start})"
            )
        ) from None
    rows = list(csv.reader(io.StringIO(text), delimiter=contract.delimiter))
    header = rows[0] if rows else []
    _check_delimiter(header, file_name, contract)
    _check_field_counts(rows, text, file_name)
    string_columns: dict[str, Any] = {
        c.name: "str" for c in contract.columns if c.type in {"string", "datetime"}
    }
    frame = pd.read_csv(
        io.StringIO(text), sep=contract.delimiter, dtype=cast(Any, string_columns), keep_default_na=True
    )
    frame.attrs[LINE_NUMBERS] = _record_lines(text, contract.delimiter)
    return frame


class _LineNumbers(tuple[int, ...]):
    """Immutable record -> file line mapping kept in ``DataFrame.attrs``.

    pandas deep-copies ``attrs`` into the result of every operation (``NDFrame.__finalize__``); a
    plain list of one int per record made each copy cost O(rows) Python calls (13 s of a 20,000-row
    validation under profile). Being immutable, it is its own deep copy.
    """

    def __deepcopy__(self, memo: dict[int, Any]) -> _LineNumbers:
        return self


def _record_lines(text: str, delimiter: str) -> _LineNumbers:
    """The file line each data record starts on (1-based; the header is line 1, blank lines skipped as pandas does)."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    lines: list[int] = []
    previous = 0
    for index, record in enumerate(reader):
        if index and record:
            lines.append(previous + 1)
        previous = reader.line_num
    return _LineNumbers(lines)


def _check_delimiter(header: list[str], file_name: str, contract: DatasetContract) -> None:
    if len(header) != 1 or len(contract.columns) == 1:
        return
    for other in _OTHER_DELIMITERS:
        if other != contract.delimiter and other in header[0]:
            raise _RejectedError(
                CheckFailure(
                    "wrong_delimiter",
                    f"'{file_name}' header is one field {header[0][:80]!r}: the file looks {other!r}-separated "
                    f"but contract '{contract.name}' expects {contract.delimiter!r}; re-export with "
                    f"{contract.delimiter!r} or set 'delimiter' in the contract",
                )
            )


def _check_field_counts(rows: list[list[str]], text: str, file_name: str) -> None:
    if not rows:
        return
    width = len(rows[0])
    bad = [(i, r) for i, r in enumerate(rows[1:], start=2) if r and len(r) != width]
    if not bad:
        return
    line, row = bad[-1]
    if line == len(rows) and len(row) < width and not text.endswith("\n"):
        raise _RejectedError(
            CheckFailure(
                "truncated_file",
                f"'{file_name}' ends mid-row: line {line} has {len(row)} of {width} fields and no final "
                "newline; the file was cut off (re-upload the complete file)",
                examples=[{"line": line, "fields": row}],
            )
        )
    raise _RejectedError(
        CheckFailure(
            "corrupt_file",
            f"'{file_name}' has {len(bad)} row(s) whose field count differs from the header's {width} "
            f"(first at line {bad[0][0]}: {len(bad[0][1])} fields); quoting or delimiters are broken",
            count=len(bad),
            examples=[{"line": i, "fields": r} for i, r in bad[:MAX_EXAMPLES]],
        )
    )


# --- checks ------------------------------------------------------------------------------------


def _structural_failures(
    frame: pd.DataFrame, contract: DatasetContract, others: list[DatasetContract]
) -> list[CheckFailure]:
    declared = contract.column_names
    present = [c for c in declared if c in frame.columns]
    batch_cols = [str(c) for c in frame.columns]
    if len(present) * 2 < len(declared):
        likely = [
            o.name for o in others if o.name != contract.name and set(o.column_names) <= set(batch_cols)
        ]
        hint = f"; it matches contract '{likely[0]}'" if likely else ""
        return [
            CheckFailure(
                "different_contract",
                f"the batch does not look like dataset '{contract.name}': only {len(present)} of "
                f"{len(declared)} contract columns are present (batch columns: {', '.join(batch_cols[:12])})"
                f"{hint}; check that you picked the right contract",
            )
        ]
    failures: list[CheckFailure] = []
    if contract.target not in frame.columns:
        failures.append(
            CheckFailure(
                "label_missing",
                f"the target column '{contract.target}' is missing: training data must carry the label",
                column=contract.target,
            )
        )
    missing = [c for c in declared if c not in frame.columns and c != contract.target]
    if missing:
        failures.append(
            CheckFailure(
                "missing_columns",
                f"{len(missing)} contract column(s) missing from the batch: {', '.join(missing)}",
                count=len(missing),
            )
        )
    extra = [c for c in batch_cols if c not in declared]
    if extra and contract.extra_columns == "reject":
        failures.append(
            CheckFailure(
                "extra_columns",
                f"{len(extra)} column(s) not in contract '{contract.name}': {', '.join(extra)} "
                "(extra_columns: reject); add them to the contract or set extra_columns to drop/allow",
                count=len(extra),
            )
        )
    if len(frame) == 0:
        failures.append(CheckFailure("empty_file", "the batch has a header but no data rows"))
    return failures


def _normalise_booleans(frame: pd.DataFrame, contract: DatasetContract) -> pd.DataFrame:
    frame = frame.copy()
    for col in contract.columns:
        if col.type == "boolean" and col.name in frame.columns and frame[col.name].dtype != bool:
            frame[col.name] = frame[col.name].map(
                lambda v: _BOOLEAN_TOKENS.get(v.strip().lower(), v) if isinstance(v, str) else v
            )
    return frame


def _kind_of(check: str, column: str | None, contract: DatasetContract) -> str:
    if check.startswith(("coerce_dtype", "dtype")):
        return "wrong_type"
    if check == "not_nullable":
        return "label_null" if column == contract.target else "nulls"
    if "uniqueness" in check or check == "field_uniqueness":
        return "duplicate_keys"
    if check.startswith("isin"):
        return "invalid_label" if column == contract.target else "unknown_category"
    if check.startswith(("greater_than", "less_than", "in_range")):
        return "out_of_range"
    return "check_failed"


def _describe(kind: str, column: str | None, contract: DatasetContract, values: list[Any], n: int) -> str:
    shown = ", ".join(repr(v) for v in values[:MAX_EXAMPLES])
    spec = contract.column(column) if column in contract.column_names else None
    if kind == "wrong_type" and spec:
        return f"column '{column}' must be {spec.type}: {n} value(s) cannot be converted, e.g. {shown}"
    if kind == "out_of_range" and spec:
        return (
            f"column '{column}' must be within [{spec.min}, {spec.max}]: {n} value(s) outside, e.g. {shown}"
        )
    if kind in {"unknown_category", "invalid_label"} and spec:
        return (
            f"column '{column}' allows {spec.categories}: {n} row(s) have other values, e.g. {shown}; "
            "add new categories to the contract if they are legitimate"
        )
    if kind == "nulls":
        return f"column '{column}' is not nullable: {n} row(s) are empty"
    if kind == "label_null":
        return f"the target '{column}' is empty in {n} row(s): every training row needs a label"
    if kind == "duplicate_keys":
        return f"unique key {contract.unique_keys} repeats: {n} row(s) share a key, e.g. {shown}"
    return f"column '{column}': {n} value(s) failed a check, e.g. {shown}"


def _schema_failures(
    frame: pd.DataFrame, contract: DatasetContract
) -> tuple[list[CheckFailure], pd.DataFrame | None]:
    import pandera.errors as pa_errors

    from pipelines.contract import pandera_schema

    schema = pandera_schema(contract, columns=[str(c) for c in frame.columns])
    try:
        return [], schema.validate(_normalise_booleans(frame, contract), lazy=True)
    except pa_errors.SchemaErrors as exc:
        cases = exc.failure_cases
    failures: list[CheckFailure] = []
    mistyped = set(cases.loc[cases["check"].str.startswith("coerce_dtype"), "column"])
    seen: set[tuple[str, str | None]] = set()
    for (column, check), group in cases.groupby(["column", "check"], sort=False, dropna=False):
        column = None if column is None or column != column else str(column)
        check = str(check)
        kind = _kind_of(check, column, contract)
        if (kind == "wrong_type" and (kind, column) in seen) or (column in mistyped and kind != "wrong_type"):
            continue  # one wrong_type per column; range checks on unconvertible values say nothing new
        seen.add((kind, column))
        rows = [int(i) for i in group["index"].dropna().unique()]
        values = list(dict.fromkeys(group["failure_case"].tolist()))
        label, numbers = _positions(frame, rows)
        examples = [
            {label.replace(" ", "_"): n, **{k: _plain(v) for k, v in frame.loc[i].items()}}
            for i, n in list(zip(rows, numbers, strict=True))[:MAX_EXAMPLES]
            if i in frame.index
        ]
        shown = ", ".join(map(str, numbers[:5])) + (", ..." if len(numbers) > 5 else "")
        where = f" ({label}{'s' if len(numbers) > 1 else ''} {shown})" if rows else ""
        failures.append(
            CheckFailure(
                kind,
                _describe(kind, column, contract, values, len(rows) or len(values)) + where,
                column=column,
                check=check,
                count=len(rows) or len(values),
                examples=examples,
            )
        )
    return failures, None


def _positions(frame: pd.DataFrame, rows: list[int]) -> tuple[str, list[int]]:
    """Where rows are in the file: ``("line", [file lines])`` for CSV, else ``("data row", [1-based rows])``."""
    lines = frame.attrs.get(LINE_NUMBERS)
    if lines is not None and all(0 <= i < len(lines) for i in rows):
        return "line", [lines[i] for i in rows]
    return "data row", [i + 1 for i in rows]


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        try:
            return value.item()
        except (ValueError, AttributeError):
            return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def check_batch(
    data: bytes,
    file_name: str,
    contract: DatasetContract,
    source: str | None = None,
    others: list[DatasetContract] | None = None,
) -> tuple[ValidationReport, pd.DataFrame | None]:
    """Validate raw batch bytes; return the report and, when it passed, the curated (typed) frame.

    ``others`` are further known contracts, used to name the likely dataset of a mismatched batch.
    """
    source = source or file_name

    def report(rows: int, columns: list[str], failures: list[CheckFailure]) -> ValidationReport:
        return ValidationReport(contract.name, contract.version, source, rows, columns, failures)

    try:
        frame = read_batch(data, file_name, contract)
    except _RejectedError as rejected:
        return report(0, [], [rejected.failure]), None
    columns = [str(c) for c in frame.columns]
    failures = _structural_failures(frame, contract, others or [])
    if any(f.kind in {"different_contract", "empty_file"} for f in failures):
        return report(len(frame), columns, failures), None
    schema_failures, curated = _schema_failures(frame, contract)
    failures += schema_failures
    if failures or curated is None:
        return report(len(frame), columns, failures), None
    keep = [c for c in contract.column_names if c in curated.columns]
    if contract.extra_columns == "allow":
        keep += [c for c in curated.columns if c not in keep]
    return report(len(frame), columns, []), cast("pd.DataFrame", curated[keep]).reset_index(drop=True)


# --- the step ----------------------------------------------------------------------------------


@dataclass
class ValidationOutcome:
    """Where the report and the curated data of a passing batch were written."""

    report: ValidationReport
    report_uri: str
    curated_uri: str
    manifest: dict[str, Any] | None = None
    """The validated batch's version manifest (``pipelines.datasets``)."""


def curated_key(dataset: str, ingest_date: str, sha_prefix: str) -> str:
    """Curated data key: ``curated/<dataset>/ingest_date=YYYY-MM-DD/<sha>/data.parquet``."""
    return f"curated/{dataset}/ingest_date={ingest_date}/{sha_prefix}/data.parquet"


def frame_to_parquet(frame: pd.DataFrame) -> bytes:
    """Parquet bytes with microsecond timestamps (readable by Spark 3.5)."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, coerce_timestamps="us", allow_truncated_timestamps=True)
    return buffer.getvalue()


def validate_batch(
    clients: AwsClients,
    contract: DatasetContract,
    batch: IngestResult,
    others: list[DatasetContract] | None = None,
) -> ValidationOutcome:
    """Validate a landed batch, write ``validation.json``/``.md`` next to it, and curate it if it passed.

    Raises :class:`BatchValidationError` (after writing the report) when any check fails; nothing
    is written to the curated bucket then.
    """
    settings = clients.settings
    s3 = clients.s3
    body = s3.get_object(Bucket=batch.bucket, Key=batch.key)["Body"].read()
    report, curated = check_batch(body, batch.file_name, contract, f"s3://{batch.bucket}/{batch.key}", others)
    lake_key = settings.data_lake_key_arn
    put_bytes(
        s3,
        batch.bucket,
        f"{batch.prefix}/validation.md",
        report.to_markdown().encode(),
        lake_key,
        "text/markdown",
    )
    report_uri = put_bytes(
        s3,
        batch.bucket,
        f"{batch.prefix}/validation.json",
        report.to_json().encode(),
        lake_key,
        "application/json",
    )
    if curated is None:
        raise BatchValidationError(report, report_uri)
    curated_bucket = settings.require("curated_bucket")
    key = curated_key(contract.name, batch.ingest_date, batch.sha256[:16])
    parquet = frame_to_parquet(curated)
    uri = put_bytes(s3, curated_bucket, key, parquet, lake_key, "application/x-parquet")
    manifest = publish_validated(clients, contract, batch, parquet, len(curated), report_uri, uri)
    return ValidationOutcome(report, report_uri, uri, manifest)


def publish_validated(
    clients: AwsClients,
    contract: DatasetContract,
    batch: IngestResult,
    parquet: bytes,
    rows: int,
    report_uri: str,
    curated_uri: str,
) -> dict[str, Any]:
    """Publish a passing batch's typed data as an immutable version of ``<name>/validated`` in the
    curated bucket (``pipelines.datasets``); its parent is the raw upload. Return the manifest."""
    from pipelines.datasets import publish_dataset, validated_dataset

    return publish_dataset(
        clients.s3,
        clients.settings.require("curated_bucket"),
        kind="curated",
        dataset=validated_dataset(contract.name),
        files=[("data.parquet", parquet)],
        key_arn=clients.settings.data_lake_key_arn,
        contract=contract,
        parents=[{"kind": "raw", "uri": batch.uri, "sha256": batch.sha256}],
        row_count=rows,
        extra={
            "ingest_date": batch.ingest_date,
            "validation_report": report_uri,
            "curated_uri": curated_uri,
        },
    )
