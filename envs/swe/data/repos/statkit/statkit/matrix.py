"""A small dense matrix of floats with Gaussian elimination."""

from __future__ import annotations

from collections.abc import Sequence

_EPSILON = 1e-12


class MatrixError(ValueError):
    """Shapes that do not fit, or a singular matrix."""


class Matrix:
    def __init__(self, rows: Sequence[Sequence[float]]) -> None:
        if not rows or not rows[0]:
            raise MatrixError("a matrix needs at least one row and one column")
        width = len(rows[0])
        if any(len(row) != width for row in rows):
            raise MatrixError("every row must have the same length")
        self.rows: list[list[float]] = [list(row) for row in rows]

    @classmethod
    def identity(cls, size: int) -> Matrix:
        return cls([[1.0 if i == j else 0.0 for j in range(size)] for i in range(size)])

    @classmethod
    def zeros(cls, height: int, width: int) -> Matrix:
        return cls([[0.0] * width for _ in range(height)])

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), len(self.rows[0])

    def __getitem__(self, index: tuple[int, int]) -> float:
        row, column = index
        return self.rows[row][column]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Matrix):
            return NotImplemented
        return self.rows == other.rows

    def __repr__(self) -> str:
        return f"Matrix({self.rows!r})"

    def is_close(self, other: Matrix, tolerance: float = 1e-9) -> bool:
        if self.shape != other.shape:
            return False
        return all(
            abs(a - b) <= tolerance
            for row_a, row_b in zip(self.rows, other.rows, strict=True)
            for a, b in zip(row_a, row_b, strict=True)
        )

    def _check_same_shape(self, other: Matrix, operation: str) -> None:
        if self.shape != other.shape:
            raise MatrixError(
                f"cannot {operation} matrices of shapes {self.shape} and {other.shape}"
            )

    def __add__(self, other: Matrix) -> Matrix:
        self._check_same_shape(other, "add")
        return Matrix(
            [
                [a + b for a, b in zip(r, s, strict=True)]
                for r, s in zip(self.rows, other.rows, strict=True)
            ]
        )

    def __sub__(self, other: Matrix) -> Matrix:
        self._check_same_shape(other, "subtract")
        return Matrix(
            [
                [a - b for a, b in zip(r, s, strict=True)]
                for r, s in zip(self.rows, other.rows, strict=True)
            ]
        )

    def __mul__(self, scalar: float) -> Matrix:
        return Matrix([[value * scalar for value in row] for row in self.rows])

    __rmul__ = __mul__

    def __matmul__(self, other: Matrix) -> Matrix:
        height, inner = self.shape
        other_inner, width = other.shape
        if inner != other_inner:
            raise MatrixError(f"cannot multiply shapes {self.shape} and {other.shape}")
        return Matrix(
            [
                [
                    sum(self.rows[i][k] * other.rows[k][j] for k in range(inner))
                    for j in range(width)
                ]
                for i in range(height)
            ]
        )

    def transpose(self) -> Matrix:
        height, width = self.shape
        return Matrix([[self.rows[i][j] for i in range(height)] for j in range(width)])

    def _require_square(self, operation: str) -> int:
        height, width = self.shape
        if height != width:
            raise MatrixError(f"{operation} needs a square matrix, not {height}x{width}")
        return height

    def trace(self) -> float:
        size = self._require_square("trace")
        return sum(self.rows[i][i] for i in range(size))

    def determinant(self) -> float:
        """By elimination with partial pivoting; each row swap flips the sign."""
        size = self._require_square("determinant")
        work = [list(row) for row in self.rows]
        sign = 1.0
        result = 1.0
        for column in range(size):
            pivot = max(range(column, size), key=lambda r: abs(work[r][column]))
            if abs(work[pivot][column]) < _EPSILON:
                return 0.0
            if pivot != column:
                work[column], work[pivot] = work[pivot], work[column]
                sign = -sign
            result *= work[column][column]
            for row in range(column + 1, size):
                factor = work[row][column] / work[column][column]
                for k in range(column, size):
                    work[row][k] -= factor * work[column][k]
        return sign * result

    def _eliminate(self, right: list[list[float]]) -> list[list[float]]:
        """Gauss-Jordan on ``[self | right]``; returns the transformed right-hand side."""
        size = self._require_square("solving")
        work = [list(row) + list(extra) for row, extra in zip(self.rows, right, strict=True)]
        for column in range(size):
            pivot = max(range(column, size), key=lambda r: abs(work[r][column]))
            if abs(work[pivot][column]) < _EPSILON:
                raise MatrixError("the matrix is singular")
            work[column], work[pivot] = work[pivot], work[column]
            scale = work[column][column]
            work[column] = [value / scale for value in work[column]]
            for row in range(size):
                if row != column and work[row][column] != 0:
                    factor = work[row][column]
                    work[row] = [
                        a - factor * b for a, b in zip(work[row], work[column], strict=True)
                    ]
        return [row[size:] for row in work]

    def inverse(self) -> Matrix:
        size = self._require_square("inverse")
        return Matrix(self._eliminate(Matrix.identity(size).rows))

    def solve(self, vector: Sequence[float]) -> list[float]:
        """The ``x`` with ``self @ x == vector``, rounded to 12 decimal places."""
        size = self._require_square("solve")
        if len(vector) != size:
            raise MatrixError(f"the right-hand side has {len(vector)} values, expected {size}")
        solution = self._eliminate([[value] for value in vector])
        return [round(row[0], 12) for row in solution]
