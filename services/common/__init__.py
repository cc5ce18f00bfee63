"""What every service uses, written once: config, clock, errors, money, store, relay, inbox."""
