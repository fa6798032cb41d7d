"""calfeed's tests; helpers.py, fake_ll2.py, ics_helpers.py and server_thread.py are shared."""
