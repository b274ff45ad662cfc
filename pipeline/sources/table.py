"""`table` source: a TSV, CSV or Parquet table with an image-path column and a caption column.

Image paths are relative to `--images` (default: the table's folder). Key `<label>-<row:09d>`,
or `<label>-<value>` of `--key-column`.
"""
from __future__ import annotations

import logging
from pathlib import Path

from pipeline import items as R
from pipeline.items import ChunkSpec, InputItem
from pipeline.sources import safe_key, split_items
from toolbox.errors import UserError

log = logging.getLogger(__name__)

IMAGE_COLUMNS: tuple[str, ...] = ("image", "image_path", "filepath", "file_name", "filename", "path")
CAPTION_COLUMNS: tuple[str, ...] = ("caption", "text", "title")


def _pick(columns: list[str], wanted: str | None, candidates: tuple[str, ...], what: str, path: Path) -> str:
    """The column to use: the one asked for, else the first known name present."""
    if wanted:
        if wanted not in columns:
            raise UserError(f"{path}: no {what} column {wanted!r}; columns are {columns}")
        return wanted
    for name in candidates:
        if name in columns:
            return name
    raise UserError(f"{path}: no {what} column found (tried {', '.join(candidates)}); columns are {columns}; "
                    f"pass --{what}-column")


def read_table(path: Path, image_column: str | None, caption_column: str | None, key_column: str | None,
               text_only: bool):  # -> tuple[pyarrow.Table, str | None, str, list[int]]
    """(table, image column, caption column, line numbers of malformed CSV rows)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if not path.is_file():
        raise UserError(f"{path}: no such file (expected a .tsv, .csv or .parquet table)")
    suffix = path.suffix.lower()
    bad_rows: list[int] = []
    try:
        if suffix in (".parquet", ".pq"):
            table = pq.read_table(path)
        elif suffix in (".tsv", ".csv", ".txt"):
            tsv = suffix != ".csv"
            header = pacsv.open_csv(path, parse_options=pacsv.ParseOptions(
                delimiter="\t" if tsv else ",", quote_char=False if tsv else '"',
                invalid_row_handler=lambda row: "skip")).schema.names

            def on_bad(row) -> str:
                bad_rows.append(int(row.number) if row.number is not None else -1)
                return "skip"

            binary = {c: pa.binary() for c in header if c in (caption_column, *CAPTION_COLUMNS)}
            table = pacsv.read_csv(
                path,
                read_options=pacsv.ReadOptions(use_threads=False),
                parse_options=pacsv.ParseOptions(
                    delimiter="\t" if tsv else ",", quote_char=False if tsv else '"',
                    newlines_in_values=not tsv, invalid_row_handler=on_bad,
                ),
                convert_options=pacsv.ConvertOptions(column_types=binary, strings_can_be_null=False),
            )
        else:
            raise UserError(f"{path}: unknown table type {suffix!r} (use .tsv, .csv or .parquet)")
    except UserError:
        raise
    except (OSError, pa.ArrowException) as err:
        raise UserError(f"{path}: unreadable table ({str(err).splitlines()[0][:200]})") from None
    columns = table.column_names
    caption = _pick(columns, caption_column, CAPTION_COLUMNS, "caption", path)
    image = None if text_only else _pick(columns, image_column, IMAGE_COLUMNS, "image", path)
    if key_column and key_column not in columns:
        raise UserError(f"{path}: no key column {key_column!r}; columns are {columns}")
    return table, image, caption, bad_rows


def chunks(
    path: Path,
    image_root: Path | None,
    text_only: bool,
    shard_size: int,
    name: str,
    label: str = "table",
    image_column: str | None = None,
    caption_column: str | None = None,
    key_column: str | None = None,
    limit: int | None = None,
) -> list[ChunkSpec]:
    """Input chunks of a table; malformed CSV rows are listed as rejects in the first chunk."""
    table, image_col, caption_col, bad_rows = read_table(path, image_column, caption_column, key_column, text_only)
    if limit is not None:
        table = table.slice(0, limit)
    if image_col and image_root is not None and not image_root.is_dir():
        raise UserError(f"--images {image_root}: not a folder; pass the folder the image paths are relative to")
    root = (image_root or path.parent).resolve()
    captions = table.column(caption_col).to_pylist()
    images = table.column(image_col).to_pylist() if image_col else [None] * len(captions)
    keys = table.column(key_column).to_pylist() if key_column else None
    items: list[InputItem] = []
    seen: set[str] = set()
    for row, (caption, image) in enumerate(zip(captions, images)):
        key = f"{label}-{safe_key(str(keys[row]))}" if keys is not None else f"{label}-{row:09d}"
        image_id = str(image) if image is not None else str(row)
        item = InputItem(key, image_id, caption)
        if key in seen:
            item.reject, item.detail = R.DUPLICATE_KEY, f"row {row}"
        elif image_col and (image is None or str(image).strip() == ""):
            item.reject, item.detail = R.MISSING_IMAGE, f"row {row}: empty image path"
        elif image_col:
            item.image = str(root / str(image))
        seen.add(key)
        items.append(item)
    bad = [InputItem(f"{label}-line{n}", "", None, reject=R.MALFORMED_ROW, detail=f"line {n}") for n in bad_rows]
    log.info("%s: %d rows (%d malformed)", path, len(items), len(bad))
    specs = split_items(items, shard_size, name, label)
    if bad:
        if not specs:
            specs = split_items(bad, shard_size, name, label)
        else:
            specs[0].items = bad + (specs[0].items or [])
            specs[0].n_items = len(specs[0].items)
    return specs
