"""dotadevkit 1.3.0's Task1 evaluation (DOTA v2.0: 18 classes, difficult counted, VOC07),
run class by class as its `evaluate()` does, printing the APs at full precision as JSON.

Usage: python devkit_task1.py DATA_DIR   (DATA_DIR from `bench_dota_map generate`)
"""
import contextlib
import io
import json
import sys
import time

from dotadevkit.evaluate.task1 import voc_eval
from dotadevkit.misc.dota_utils import dota_classes


def main(data):
    classes = dota_classes + ["container-crane", "airport", "helipad"]
    start = time.perf_counter()
    aps = {}
    # voc_eval prints its TP/FP arrays; keep them off the JSON output.
    with contextlib.redirect_stdout(io.StringIO()):
        for name in classes:
            _, _, ap = voc_eval(
                data + "/Task1/Task1_{:s}.txt",
                data + "/labelTxt/{:s}.txt",
                data + "/imageset.txt",
                name,
                ovthresh=0.5,
                use_07_metric=True,
                version="2.0",
            )
            aps[name] = float(ap)
    total = 0.0
    for name in classes:
        total += aps[name]
    seconds = time.perf_counter() - start
    print(json.dumps({"map": total / len(classes), "ap": aps, "seconds": seconds}))


if __name__ == "__main__":
    main(sys.argv[1])
