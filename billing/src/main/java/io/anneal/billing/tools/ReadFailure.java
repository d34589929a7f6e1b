package io.anneal.billing.tools;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;

/** Why a file given to a command could not be read, in words an operator can act on. */
public final class ReadFailure {
  private ReadFailure() {}

  public static String why(IOException e) {
    return why(e, "JSON");
  }

  /** As above, for a file of {@code format} (JSON, YAML) read through Jackson. */
  public static String why(IOException e, String format) {
    if (e instanceof NoSuchFileException) return "no such file";
    if (e instanceof AccessDeniedException) return "permission denied";
    if (e instanceof java.nio.file.FileSystemException f && f.getReason() != null) return f.getReason();
    if (e instanceof JsonProcessingException j) {
      JsonLocation at = j.getLocation();
      return "not valid " + format + (at == null ? "" : " at line " + at.getLineNr() + ", column " + at.getColumnNr())
          + ": " + j.getOriginalMessage();
    }
    return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
  }
}
