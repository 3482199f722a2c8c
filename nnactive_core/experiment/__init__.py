"""Active-learning experiments: config, folders, state, the loop runner and the oracle.

Importing the package asks OpenMP to let idle threads sleep (unless the user chose otherwise): threads
that spin while waiting make torch on a busy CPU up to 15x slower (measured on 2 shared cores: 13 s
against 1 s per demo case). It only takes effect before torch is first imported, which the experiment
commands do later.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
