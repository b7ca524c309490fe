"""The scenario mite perf lab runs by default.

One module serves any concurrency: the lab passes its settings through mite's
configuration (MITE_CONF_* environment variables, which the controller loads and
shares with its runners):

    MITE_CONF_mite_perf_target_url   URL every journey GETs (default http://127.0.0.1:9898/)
    MITE_CONF_mite_perf_concurrency  journeys kept running at once (default 1)
    MITE_CONF_mite_perf_duration     seconds before the volume model stops (default 60)
    MITE_CONF_mite_perf_requests     fixed work: this many journeys of one request
                                     each, then the scenario ends (default: none,
                                     journeys run until the duration has passed)
"""
import os

from mite.datapools import IterableDataPool
from mite.scenario import StopVolumeModel
from mite_http import mite_http

DEFAULT_URL = "http://127.0.0.1:9898/"


def _setting(name, default):
    return os.environ.get("MITE_CONF_mite_perf_" + name, default)


@mite_http
async def journey(ctx, _number=None):
    url = ctx.config.get("mite_perf_target_url", DEFAULT_URL)
    async with ctx.transaction("test"):
        await ctx.http.get(url)


def constant_volume_model(concurrency, duration):
    """Keep `concurrency` journeys running until `duration` seconds have passed."""

    def volume_model(start, end):
        if start > duration:
            raise StopVolumeModel
        return concurrency

    volume_model.__name__ = f"constant volume {concurrency} for {duration}s"
    return volume_model


def scenario():
    concurrency = int(_setting("concurrency", "1"))
    duration = float(_setting("duration", "60"))
    requests = _setting("requests", "")
    # Fixed work: each journey takes a number; once they are all taken the
    # controller removes the scenario, the runners end and so does it.
    datapool = IterableDataPool((n,) for n in range(int(requests))) if requests else None
    return [
        ("mite_perf_scenario:journey", datapool, constant_volume_model(concurrency, duration)),
    ]
