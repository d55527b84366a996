"""Run every benchmark and print its figures."""

from bench import vacancy

BENCHMARKS = [vacancy]

if __name__ == "__main__":
    for module in BENCHMARKS:
        module.main()
