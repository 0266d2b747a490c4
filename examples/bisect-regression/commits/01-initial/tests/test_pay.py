from payroll.pay import weekly_pay


def test_regular_week():
    assert weekly_pay(40, 20) == 800


def test_overtime():
    assert weekly_pay(45, 20) == 950
