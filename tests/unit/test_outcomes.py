

def test_a_missing_fx_rate_converges_through_the_grace_period_then_needs_a_person() -> None:
    import datetime as dt

    from ssp_revenue.allocate.fx import MissingRate
    from ssp_revenue.core.errors import Reason
    from ssp_revenue.operate.outcomes import Severity, classify

    cut = dt.datetime(2026, 11, 7, 3, tzinfo=dt.UTC)
    grace = dt.timedelta(hours=24)
    assert MissingRate("no USD/JPY rate").reason is Reason.MISSING_REFERENCE
    during = classify(Reason.MISSING_REFERENCE, now=cut + dt.timedelta(hours=3), cutoff=cut, grace=grace,
                      freezable=True)
    after = classify(Reason.MISSING_REFERENCE, now=cut + grace, cutoff=cut, grace=grace, freezable=True)
    assert (during, after) == (Severity.CONVERGING, Severity.ACTIONABLE)
    assert classify(Reason.RULES, now=cut, cutoff=cut + grace) is Severity.ACTIONABLE
