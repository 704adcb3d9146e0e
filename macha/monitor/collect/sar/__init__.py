"""SAR history as sysstat's sadc writes it: which daily files to read (files), running ``sadf -j`` on one (sadf),
and its JSON as rows (parse). Importing the rows is the import-sar check (macha.monitor.checks.sar); the review's
summary of them is macha.context.sar_summary."""
