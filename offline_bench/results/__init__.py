"""Every model that is a file on disk (run, sweep summary, phases, gap ladder, plan rows, start-up facts), how it is
built, loaded and saved, and its statistics."""
