"""One module per AWS resource kind, each with the same verbs: observe, ensure, delete.

`observe` never changes anything; `ensure` creates or repairs; `delete` treats NotFound
as done. Resources the user brought are observed and used, never changed or deleted.
"""
