"""The back office: the teller desk (``teller``) and administration (``admin``), each a
blueprint of its own under ``/teller/`` and ``/admin/``."""
