def test_arithmetic():
    assert 2 + 2 == 4
