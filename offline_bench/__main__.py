from offline_bench.cli.main import main

if __name__ == "__main__":  # the engine spawns processes: keep the guard
    main()
