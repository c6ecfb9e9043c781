import pytest
from statkit import Matrix, MatrixError


def test_construction_and_shape():
    m = Matrix([[1, 2, 3], [4, 5, 6]])
    assert m.shape == (2, 3)
    assert m[1, 2] == 6
    with pytest.raises(MatrixError):
        Matrix([])
    with pytest.raises(MatrixError, match="same length"):
        Matrix([[1, 2], [3]])


def test_identity_and_zeros():
    assert Matrix.identity(2) == Matrix([[1, 0], [0, 1]])
    assert Matrix.zeros(2, 3).rows == [[0, 0, 0], [0, 0, 0]]


def test_add_sub_scale():
    a = Matrix([[1, 2], [3, 4]])
    b = Matrix([[10, 20], [30, 40]])
    assert (a + b).rows == [[11, 22], [33, 44]]
    assert (b - a).rows == [[9, 18], [27, 36]]
    assert (a * 3).rows == [[3, 6], [9, 12]]
    assert (2 * a).rows == [[2, 4], [6, 8]]
    with pytest.raises(MatrixError, match="add"):
        a + Matrix([[1, 2, 3]])


def test_matmul():
    a = Matrix([[1, 2, 3], [4, 5, 6]])
    b = Matrix([[7, 8], [9, 10], [11, 12]])
    assert (a @ b).rows == [[58, 64], [139, 154]]
    assert (b @ a).shape == (3, 3)
    with pytest.raises(MatrixError, match="multiply"):
        a @ a


def test_transpose():
    assert Matrix([[1, 2, 3], [4, 5, 6]]).transpose().rows == [[1, 4], [2, 5], [3, 6]]


def test_trace():
    assert Matrix([[1, 2], [3, 4]]).trace() == 5
    with pytest.raises(MatrixError, match="square"):
        Matrix([[1, 2]]).trace()


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([[2, 1], [1, 3]], 5),
        ([[0, 1], [1, 0]], -1),
        ([[1, 2], [2, 4]], 0),
        ([[6, 1, 1], [4, -2, 5], [2, 8, 7]], -306),
        ([[0, 2, 1], [3, 0, 1], [1, 1, 0]], 5),
        ([[7]], 7),
    ],
)
def test_determinant(rows, expected):
    assert Matrix(rows).determinant() == pytest.approx(expected)


def test_inverse():
    m = Matrix([[4, 7], [2, 6]])
    inverse = m.inverse()
    assert inverse.is_close(Matrix([[0.6, -0.7], [-0.2, 0.4]]))
    assert (m @ inverse).is_close(Matrix.identity(2))


def test_inverse_needs_pivoting():
    m = Matrix([[0, 1, 2], [1, 0, 3], [4, -3, 8]])
    assert (m @ m.inverse()).is_close(Matrix.identity(3))
    assert (m.inverse() @ m).is_close(Matrix.identity(3))


def test_singular_matrix_has_no_inverse():
    with pytest.raises(MatrixError, match="singular"):
        Matrix([[1, 2], [2, 4]]).inverse()


def test_solve():
    assert Matrix([[2, 1], [1, 3]]).solve([3, 5]) == [0.8, 1.4]
    assert Matrix([[0, 2, 1], [3, 0, 1], [1, 1, 0]]).solve([4, 5, 2]) == [1.0, 1.0, 2.0]
    with pytest.raises(MatrixError, match="right-hand side"):
        Matrix([[1, 0], [0, 1]]).solve([1, 2, 3])


def test_is_close_and_repr():
    a = Matrix([[1.0, 2.0]])
    assert a.is_close(Matrix([[1.0 + 1e-12, 2.0]]))
    assert not a.is_close(Matrix([[1.1, 2.0]]))
    assert not a.is_close(Matrix([[1.0], [2.0]]))
    assert repr(a) == "Matrix([[1.0, 2.0]])"
