"""Tenancy: DaskAwsPolicy, what a platform admin allows and gives a tenant's namespace.

spec.py holds the models (the CRD is generated from them), merge.py folds the policies
of a namespace into one Effective policy, usage.py counts what the namespace's clusters
hold against its limits. All pure: the operator reads and writes the API server.
"""
