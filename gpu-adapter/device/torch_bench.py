"""PyTorch counterpart of io.anneal.gpu.GpuBench: the same SGEMM and the same MLP step.

  python3 torch_bench.py sgemm 4096 20
  python3 torch_bench.py mlp 784,2048,2048,10 512 200

TF32 is disabled so torch.matmul is a true FP32 SGEMM. The MLP step matches Anneal's: ReLU hidden
layers, softmax cross-entropy, Adam (lr 1e-3), the batch copied from host memory each step and the
loss read back each step (.item(), which synchronizes, as Anneal's step does).
"""
import sys
import time

import torch

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.set_float32_matmul_precision("highest")
dev = torch.device("cuda")
print("device:", torch.cuda.get_device_name(0), "torch", torch.__version__, "cuda", torch.version.cuda)


def sgemm(n, reps):
    g = torch.Generator(device="cpu").manual_seed(42)
    a = (torch.rand(n, n, generator=g) * 2 - 1).to(dev)
    b = (torch.rand(n, n, generator=g) * 2 - 1).to(dev)
    c = torch.matmul(a, b)
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    t0 = time.perf_counter()
    start.record()
    for _ in range(reps):
        c = torch.matmul(a, b)
    stop.record()
    torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    ms = start.elapsed_time(stop)
    flops = 2.0 * n * n * n * reps
    print(f"torch.matmul n={n} reps={reps}: {flops / (ms * 1e6):.1f} GFLOP/s by CUDA events "
          f"({ms / reps:.3f} ms/launch), {flops / wall / 1e9:.1f} GFLOP/s by wall time")


def mlp(layers, batch, steps):
    sizes = [int(s) for s in layers.split(",")]
    mods = []
    for i in range(len(sizes) - 1):
        mods.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            mods.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*mods).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    g = torch.Generator(device="cpu").manual_seed(3)
    x_host = torch.rand(batch, sizes[0], generator=g) * 2 - 1
    y_host = torch.randint(0, sizes[-1], (batch,), generator=g)

    def step():
        x, y = x_host.to(dev), y_host.to(dev)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(max(1, min(10, steps // 10))):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    wall = time.perf_counter() - t0
    print(f"torch mlp {layers} batch={batch} adam: {wall * 1e3 / steps:.3f} ms/step wall (loss {loss:.4f})")


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "sgemm":
        sgemm(int(sys.argv[2]), int(sys.argv[3]))
    elif kind == "mlp":
        mlp(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit("usage: torch_bench.py sgemm N REPS | mlp L1,..,Lk BATCH STEPS")
