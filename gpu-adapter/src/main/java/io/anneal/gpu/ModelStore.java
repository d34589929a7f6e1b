package io.anneal.gpu;

import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/** Where trained models are kept so that {@code infer} jobs can name them; models belong to a tenant. */
public interface ModelStore {
  void put(String owner, String modelId, byte[] model);

  Optional<byte[]> get(String owner, String modelId);

  /** A store in memory, for tests and the simulated fleet. */
  static ModelStore inMemory() {
    Map<String, byte[]> m = new ConcurrentHashMap<>();
    return new ModelStore() {
      @Override
      public void put(String owner, String modelId, byte[] model) {
        m.put(owner + "/" + modelId, model.clone());
      }

      @Override
      public Optional<byte[]> get(String owner, String modelId) {
        return Optional.ofNullable(m.get(owner + "/" + modelId)).map(byte[]::clone);
      }
    };
  }
}
