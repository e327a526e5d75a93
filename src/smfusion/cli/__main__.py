"""``python -m smfusion.cli ...`` is ``smfusion ...``."""

import os

from smfusion.cli.main import main

if __name__ == "__main__":
    code = main()
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:  # a torchrun worker (train --nproc N, or torchrun -m)
        from smfusion.training.distributed import exit_process

        exit_process(code)  # flushed, then os._exit: see "Teardown" in smfusion.training.distributed
    raise SystemExit(code)
