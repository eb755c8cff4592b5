"""`cnet up` / `cnet down`: a declarative stack file applied in one batched process.

spec.py    the TOML file, validated with cnet.validate, errors named by key
check.py   the file against what exists: keep, recreate, create, orphans, missing networks
create.py  the new containers: one transaction, one merged plan (plans.batch), watchers
down.py    removing containers in one batch
apply.py   up and down themselves
"""
