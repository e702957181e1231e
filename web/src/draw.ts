// Drawing a plan's outline with Leaflet-Geoman (loaded on first use: it is most of the
// app's weight and only planners drawing need it).
import L from 'leaflet';
import '@geoman-io/leaflet-geoman-free';

type PmMap = L.Map & { pm: L.PM.PMMap };

function pm(map: L.Map): L.PM.PMMap {
  const m = map as PmMap;
  // Geoman hooks maps created after it loads; this one was created before.
  if (!m.pm) m.pm = new (L.PM as unknown as { Map: new (map: L.Map) => L.PM.PMMap }).Map(map);
  return m.pm;
}

/** Lets the user draw a polygon (click the first vertex to close it); resolves with its
 *  geometry and the drawn layer, or null when cancelled. */
export function drawPolygon(map: L.Map): Promise<{ geometry: GeoJSON.Polygon; layer: L.Polygon } | null> {
  const p = pm(map);
  return new Promise((resolve) => {
    const done = (result: { geometry: GeoJSON.Polygon; layer: L.Polygon } | null) => {
      map.off('pm:create', onCreate);
      map.off('pm:drawend', onEnd);
      map.getContainer().classList.remove('drawing');
      resolve(result);
    };
    const onCreate = (e: L.LeafletEvent) => {
      const layer = (e as unknown as { layer: L.Polygon }).layer;
      done({ geometry: layer.toGeoJSON().geometry as GeoJSON.Polygon, layer });
    };
    // drawend follows create too: only a drawend without a shape is a cancel.
    const onEnd = () => setTimeout(() => done(null), 0);
    map.on('pm:create', onCreate);
    map.once('pm:drawend', onEnd);
    map.getContainer().classList.add('drawing');
    p.enableDraw('Polygon', { snappable: false, allowSelfIntersection: true, continueDrawing: false });
  });
}

export function cancelDrawing(map: L.Map): void {
  pm(map).disableDraw();
}
