"""Dispatch: who executes runs. Run state lives only in the store; a queue only wakes workers up."""
