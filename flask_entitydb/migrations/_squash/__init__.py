"""``flask db squash``: one revision standing for the history up to a revision, for new
databases, proved equal to that history on scratch databases before it is written.

``line`` chooses the revisions, ``scratch`` builds the scratch databases through
``env.py``, ``render`` writes the squashed revision from the schema the history built,
``snapshot`` reflects and compares two schemas, ``files`` reads and writes the squashed
revisions (``<migrations folder>/squashed/``), ``start`` lets ``upgrade`` start a new
database from one, and ``command`` is the API function.
"""
