//! Dual-fire to the site's existing pixel (`window.pdPixel`). It sees every call first and exactly as
//! the page made it, and whatever it does (including throwing) cannot stop our own event.

type Pixel = { track?: unknown };

export function forwardToPixel(event: unknown, properties: unknown): void {
  try {
    const pixel = (window as unknown as { pdPixel?: Pixel }).pdPixel;
    if (pixel && typeof pixel.track == 'function') pixel.track(event, properties);
  } catch (_) {
    // The pixel's failure is its own; ours goes ahead.
  }
}
