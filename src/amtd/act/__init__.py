"""Acting: the executors' guards, claims, audit records and the actions themselves."""
