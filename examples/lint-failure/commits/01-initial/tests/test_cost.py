import pytest

from shipping.cost import parcel_cost


def test_one_kilo():
    assert parcel_cost(1) == pytest.approx(5.7)


def test_rejects_zero():
    with pytest.raises(ValueError):
        parcel_cost(0)
