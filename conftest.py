"""Every test runs with its own user directories, never the machine's real config, data or keyring.

The CLI's defaults live under the user's config and data directories (platformdirs, which follows
the XDG variables on Linux). Tests that call the CLI without ``--config`` or a store URL would
otherwise read and migrate the store of whoever runs them, and runs of two checkouts at once would
share it. Child processes the tests start inherit the same environment.
"""

from __future__ import annotations

import os
import tempfile

_HOME = tempfile.mkdtemp(prefix="crm-upsell-tests-")
for _name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
    os.environ[_name] = os.path.join(_HOME, _name.lower())
    os.makedirs(os.environ[_name], exist_ok=True)
os.environ.pop("CRM_UPSELL_CONFIG", None)
