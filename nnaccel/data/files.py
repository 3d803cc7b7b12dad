"""Reading the user's own data: ``.csv`` (a header row, then one example per row) and ``.npy``
(a 2-D array, one example per row), as ``nnaccel train --data`` and ``nnaccel predict`` take it.

Every problem (a missing file, a ragged row, a non-numeric or empty cell) is a ValueError or
FileNotFoundError naming the file, the line and the column, raised before any training starts.
"""

from __future__ import annotations

import csv
import os
import warnings
from dataclasses import dataclass, field

import numpy as np

EXTENSIONS = (".csv", ".npy")


@dataclass
class Table:
    """The columns of a data file.

    ``names``: one name per column (the CSV header; "0", "1", ... for ``.npy``).
    ``numeric``: (m, k) float64, one row per example; NaN in a column that is not numeric.
    ``text``: the raw strings of each non-numeric column, by name, shape (m,).
    ``problems``: for each non-numeric column, where its first non-number is: (line, value).
    """

    path: str
    names: list[str]
    numeric: np.ndarray
    text: dict[str, np.ndarray] = field(default_factory=dict)
    problems: dict[str, tuple[int, str]] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return self.numeric.shape[0]

    def column_index(self, name: str) -> int:
        """The index of column ``name``; for ``.npy`` files (and as a fallback for CSV files) an
        integer such as ``-1`` counts from the end."""
        if name in self.names:
            return self.names.index(name)
        try:
            index = int(name)
        except ValueError:
            index = None
        if index is not None and -len(self.names) <= index < len(self.names):
            return index % len(self.names)
        raise ValueError(
            f"{self.path}: no column named {name!r}; its columns are {', '.join(self.names)}"
            + (" (or give an index such as -1)" if self.path.endswith(".npy") else "")
        )

    def numbers(self, names: list[str]) -> np.ndarray:
        """The columns ``names`` as an (m, len(names)) float64 array; a ValueError if one holds a
        non-number, an empty cell or NaN/infinity."""
        indices = [self.column_index(name) for name in names]
        for index in indices:
            name = self.names[index]
            if name in self.problems:
                line, value = self.problems[name]
                what = "is empty (a missing value)" if value.strip() == "" else f"holds {value!r}, not a number"
                raise ValueError(
                    f"{self.path} line {line}, column {name!r} {what}; every input column must be "
                    "numeric (encode categories as numbers and fill or drop missing values first)"
                )
        values = self.numeric[:, indices]
        if not np.isfinite(values).all():
            row, column = np.argwhere(~np.isfinite(values))[0]
            raise ValueError(
                f"{self.path}: {self._where(row)}column {self.names[indices[column]]!r} is "
                f"{values[row, column]} (a missing or infinite value); fill or drop such rows first"
            )
        return values

    def labels(self, name: str) -> np.ndarray:
        """Column ``name`` as labels (m,): float64 if numeric, else its strings; a ValueError for
        an empty or NaN label."""
        index = self.column_index(name)
        name = self.names[index]
        if name in self.text:
            labels = self.text[name]
            empty = np.flatnonzero(np.char.strip(labels.astype(str)) == "")
            if empty.size:
                raise ValueError(
                    f"{self.path}: {self._where(empty[0])}the label column {name!r} is empty; every row needs a label"
                )
            return labels
        labels = self.numeric[:, index]
        if not np.isfinite(labels).all():
            row = np.flatnonzero(~np.isfinite(labels))[0]
            raise ValueError(
                f"{self.path}: {self._where(row)}the label column {name!r} is {labels[row]} "
                "(missing or infinite); every row needs a finite label"
            )
        return labels

    def _where(self, row: int) -> str:
        # A CSV's data starts on line 2, under the header.
        return f"line {row + 2}, " if self.path.endswith(".csv") else f"row {row}, "


def check_readable(path: str | os.PathLike, what: str = "data file") -> str:
    """``path`` as a string, or the error a user can act on if it cannot be read."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} {path!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{what} {path!r} is a directory, not a file")
    if not os.access(path, os.R_OK):
        raise PermissionError(f"{what} {path!r} is not readable (check its permissions)")
    return path


def read_table(path: str | os.PathLike) -> Table:
    """Read a ``.csv`` or ``.npy`` data file into a Table."""
    path = check_readable(path)
    extension = os.path.splitext(path)[1].lower()
    if extension == ".npy":
        return _read_npy(path)
    if extension == ".csv":
        return _read_csv(path)
    raise ValueError(f"cannot read {path!r}: expected a .csv file (with a header row) or a .npy file")


def _read_npy(path: str) -> Table:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as error:
        raise ValueError(f"{path!r} is not a readable .npy array (truncated, corrupt or pickled: {error})") from error
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{path!r} holds several arrays; expected one 2-D .npy array (examples, columns)")
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{path!r} has dtype {array.dtype}; expected numbers")
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"{path!r} has shape {array.shape}; expected a 2-D array with one row per example")
    return Table(path, [str(index) for index in range(array.shape[1])], array.astype(np.float64, copy=False))


def _read_header(path: str) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), None)
    except UnicodeDecodeError as error:
        raise ValueError(f"{path!r} is not a text CSV file (not UTF-8: {error.reason})") from None
    except csv.Error as error:  # e.g. a field over the csv module's 128 KiB limit
        raise ValueError(f"{path!r}: the header row cannot be read as CSV ({error})") from None
    if not header or not any(name.strip() for name in header):
        raise ValueError(f"{path!r} is empty; a CSV file needs a header row naming its columns, then data rows")
    names = [name.strip() for name in header]
    if "" in names:
        raise ValueError(f"{path!r}: column {names.index('') + 1} of the header row has no name")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{path!r}: the header row repeats the column name(s) {', '.join(repeated)}")
    if len(names) == 1 and any(separator in names[0] for separator in ";\t"):
        raise ValueError(f"{path!r}: the header {names[0]!r} has one column; nnaccel reads comma-separated files")
    try:
        float(names[0])
    except ValueError:
        return names
    raise ValueError(f"{path!r}: the first row ({', '.join(names)}) holds numbers, not column names; add a header row")


def _read_csv(path: str) -> Table:
    names = _read_header(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": reported below as one clear line
            values = np.loadtxt(
                path, delimiter=",", skiprows=1, ndmin=2, comments=None, encoding="utf-8-sig", quotechar='"', dtype=np.float64
            )
    except ValueError:
        return _read_csv_slowly(path, names)  # find and name the offending cells
    if values.shape[0] == 0:
        raise ValueError(f"{path!r} has a header row but no data rows")
    if values.shape[1] != len(names):
        raise ValueError(f"{path!r}: the data rows have {values.shape[1]} fields but the header names {len(names)} columns")
    return Table(path, names, values)


def _rows(reader, path: str):
    """The reader's rows, with a malformed one (a field over 128 KiB, a stray quote) as a ValueError."""
    try:
        yield from reader
    except csv.Error as error:
        raise ValueError(f"{path!r} line {reader.line_num} cannot be read as CSV ({error})") from None


def _read_csv_slowly(path: str, names: list[str]) -> Table:
    """Read a CSV cell by cell, keeping non-numeric columns as text and where each first fails."""
    k = len(names)
    cells: list[list[str]] = [[] for _ in range(k)]
    lines: list[int] = []
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader)
        for row in _rows(reader, path):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if len(row) != k:
                raise ValueError(f"{path!r} line {reader.line_num} has {len(row)} fields but the header names {k} columns")
            lines.append(reader.line_num)
            for column, cell in zip(cells, row):
                column.append(cell.strip())
    if not lines:
        raise ValueError(f"{path!r} has a header row but no data rows")
    numeric = np.full((len(lines), k), np.nan)
    table = Table(path, names, numeric)
    for index, (name, column) in enumerate(zip(names, cells)):
        try:
            numeric[:, index] = np.array(column, dtype=np.float64)
            continue
        except ValueError:
            pass
        for line, cell in zip(lines, column):
            try:
                float(cell)
            except ValueError:
                table.problems[name] = (line, cell)
                break
        table.text[name] = np.array(column)
    return table
