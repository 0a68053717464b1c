"""The scheduler: a short loop around `services.scheduling.tick`."""
