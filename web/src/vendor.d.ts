// Types of the Leaflet plugins used (they ship none).
import 'leaflet';

declare module 'leaflet' {
  interface VectorGridOptions extends GridLayerOptions {
    rendererFactory?: unknown;
    vectorTileLayerStyles?: Record<string, PathOptions | PathOptions[] | ((props: object, z: number) => PathOptions)>;
    interactive?: boolean;
    getFeatureId?: (feature: { id?: number; properties: object }) => number | undefined;
    fetchOptions?: RequestInit;
  }
  interface VectorGrid extends GridLayer {
    setFeatureStyle(id: number, style: PathOptions): this;
    resetFeatureStyle(id: number): this;
  }
  namespace vectorGrid {
    function protobuf(url: string, options?: VectorGridOptions): VectorGrid;
  }
  namespace svg {
    function tile(...args: unknown[]): unknown;
  }
}
