package io.anneal.gpu;

import java.util.ArrayList;
import java.util.List;
import java.util.logging.Logger;

/** Chooses the backend named by {@code --gpu-backend}. */
public final class Backends {
  private static final Logger LOG = Logger.getLogger(Backends.class.getName());

  private Backends() {}

  /** Thrown when the backend asked for cannot start; the message is meant for the operator. */
  public static final class UnavailableException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public UnavailableException(String message) {
      super(message);
    }
  }

  /**
   * @param mode {@code auto}, {@code jcuda}, {@code cpu} or {@code simulated}
   * @param cpuDevices number of CPU reference devices to expose
   * @param simulated classes of simulated GPUs to expose (for {@code simulated}, or added beside)
   */
  public static GpuBackend open(String mode, int cpuDevices, List<String> simulated) {
    return open(mode, cpuDevices, simulated, ModelStore.inMemory());
  }

  /** As above, with trained models kept in {@code models}. */
  public static GpuBackend open(String mode, int cpuDevices, List<String> simulated, ModelStore models) {
    switch (mode) {
      case "cpu":
        return new CpuBackend(cpuDevices, models);
      case "simulated":
        if (simulated.isEmpty()) {
          throw new UnavailableException("--gpu-backend simulated needs --simulated-gpus N[:CLASS]");
        }
        return new SimulatedBackend(simulated);
      case "jcuda": {
        JCudaProbe.Result r = JCudaProbe.probe();
        if (!r.usable()) {
          throw new UnavailableException("--gpu-backend jcuda: " + r.problem().orElse("no device")
              + "; use --gpu-backend auto or cpu on a machine without an NVIDIA GPU");
        }
        return new JCudaBackend(models);
      }
      case "auto": {
        JCudaProbe.Result r = JCudaProbe.probe();
        if (r.usable()) {
          try {
            GpuBackend gpu = new JCudaBackend(models);
            LOG.info("using " + gpu.devices().size() + " CUDA device(s) through JCuda");
            return gpu;
          } catch (UnavailableException e) {
            LOG.warning("CUDA device(s) found but not usable (" + e.getMessage() + "); using the CPU reference backend");
          }
        } else {
          LOG.info("no usable CUDA device (" + r.problem().orElse("none") + "); using the CPU reference backend");
        }
        return new CpuBackend(cpuDevices, models);
      }
      default:
        throw new UnavailableException("unknown --gpu-backend '" + mode + "' (auto, jcuda, cpu, simulated)");
    }
  }

  /** Parses {@code N[:CLASS]} (class defaults to H100) into one class name per device. */
  public static List<String> parseSimulated(String spec) {
    List<String> out = new ArrayList<>();
    if (spec == null || spec.isBlank()) return out;
    for (String part : spec.split(",")) {
      String[] nc = part.trim().split(":", 2);
      int n;
      try {
        n = Integer.parseInt(nc[0].trim());
      } catch (NumberFormatException e) {
        throw new UnavailableException("--simulated-gpus '" + part + "': expected N[:CLASS], e.g. 64:H100");
      }
      if (n < 1 || n > 1_000_000) throw new UnavailableException("--simulated-gpus count must be 1..1000000");
      String cls = nc.length > 1 && !nc[1].isBlank() ? nc[1].trim() : "H100";
      for (int i = 0; i < n; i++) out.add(cls);
    }
    return out;
  }
}
