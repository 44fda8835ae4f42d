"""The migration journal: one row per revision a run starts, committed before the
revision's first statement, so an interrupted revision is never run again silently."""
