export const STATUS_COLORS: Record<string, string> = {
  draft: "default",
  published: "green",
  paused: "orange",
  stopped: "red",
};
