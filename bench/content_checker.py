"""Benchmark: the claims checker on a 10,000-character text (target: < 5 ms per check).

    .venv/bin/python bench/content_checker.py [--repeats 500]

Builds a realistic 10,000-character fund promotion (mixed Chinese, ASCII, full-width digits,
punctuation, a few spaced-out and traditional prohibited claims) and prints p50/p99/max of
``flywheel.content.checker.check`` with the built-in phrase book (warm: the per-character fold
cache is filled by a first run, as in a long-running server). Also prints a cold first run.
"""

from __future__ import annotations

import argparse
import statistics
import time

from flywheel.content import checker

PARAGRAPH = (
    "本基金主要投资于沪深300指数成分股，历史业绩不代表未来表现。Fund code 000001，"
    "管理费率１.２％，申购费率0.15%。本产品不是 稳 赚 的，也不承诺收益率！穩賺不賠的说法是违规的。"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=500)
    args = parser.parse_args()
    text = (PARAGRAPH * (10_000 // len(PARAGRAPH) + 1))[:10_000]
    started = time.perf_counter()
    findings = checker.check(text)
    cold = time.perf_counter() - started
    timings = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        checker.check(text)
        timings.append(time.perf_counter() - started)
    timings.sort()
    p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
    print(f"text: {len(text)} chars, findings: {len(findings)}")
    print(f"cold first check: {cold * 1000:.2f} ms")
    print(
        f"warm: p50 {statistics.median(timings) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, "
        f"max {timings[-1] * 1000:.2f} ms over {args.repeats} checks"
    )


if __name__ == "__main__":
    main()
